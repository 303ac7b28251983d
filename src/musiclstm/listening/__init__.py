"""The listening test: a blind study of real and generated clips, its ratings in SQLite, the page that
collects them, and the report with its intervals."""
