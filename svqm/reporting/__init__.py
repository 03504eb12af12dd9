"""Reading the record for people: the admin dashboard's figures, exports, an award's filings.

Nothing here changes a row: it reads what the workflow wrote (applications, awards, the schedule,
filings) and names it in the words of each scheme's policy.
"""
