"""auditor: link and metadata auditing for corpora of news article metadata."""

__version__ = "0.1.0"
