"""Commands and queries on cases and tasks and the one write path every state change ends in
(`writes`); the work queue; supervisors' repairs; what completed steps record for the
statistics; the case file (household, support records, documents, search, the printed record,
role holders); the sweeps of due timers and escalations and incoming messages, all ending in
that write path; consultations at any window, consultation days and the register of places.
"""
