"""Text queries on the built-in path: sound descriptors measured from each preset's audio
(``audio/descriptors.py``), the words a query understands (``vocabulary.py``), and parsing and
scoring (``query.py``)."""
