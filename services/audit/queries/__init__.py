"""What privacy officers ask of the audit log, built from verified facts only.

search.py (criteria, the subject lookup, pages), report.py (the subject access report),
timeline.py (one signal's path), statistics.py (the dashboard's counts), agreement_history.py
(agreements in force and their changes) and exports/ (one module per format).
"""
