"""The operator's verbs (trigger, cancel, retry, requeue, requeue by filter, pause and resume,
schedules), who may do them, and their audit record: one layer under both faces, the operator
API (`app/api/`) and the dashboard (`app/dashboard/`), which never import each other."""
