"""Write docs/VOCABULARY.md from ``patchpilot/describe/vocabulary.py``: ``python -m scripts.make_vocabulary_doc``."""

from pathlib import Path

from patchpilot.describe.vocabulary import vocabulary_markdown

if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "VOCABULARY.md"
    target.write_text(vocabulary_markdown())
    print(f"wrote {target}")
