"""The Streamlit pages, thin views over the public API like the command line: the studio (`musiclstm demo`)
and the listening test's rating page (`musiclstm listen serve`)."""
