"""Search-QA: Search-R1-style question answering with a search tool (``T2PO/SearchQA-v0``)."""
