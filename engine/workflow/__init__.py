"""Process definitions and their execution: BPMN, DMN and forms parsed, checked, linted and
deployed as immutable versions, drafts and the sandbox test run, migration between versions, the
SpiffWorkflow runtime, the bounded expression evaluator and input bounds.
"""
