"""The outbox and SMTP.

``mailer`` queues every message (failure reports, notices) in the journal
and delivers it; ``checkmail`` gathers a tenant's check answers into one
message a while.
"""
