"""The `safety-chain` command line: municipalities publish, partners receive, officers audit."""
