"""Who may do what, and the record of what was done: users and tokens, page sessions, access rules,
the hash-chained audit trail, registered message senders.
"""
