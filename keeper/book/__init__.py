"""The numpy mirror of every watched account (keeper.book.book) and its per-block snapshots."""

from keeper.book.book import FULL_ABOVE, INDEX_TOLERANCE, SCREEN_MARGIN, Book, Row, Snapshot

__all__ = ["FULL_ABOVE", "INDEX_TOLERANCE", "SCREEN_MARGIN", "Book", "Row", "Snapshot"]
