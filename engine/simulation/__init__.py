"""Scenarios, books, the loss waterfall and the crash simulation over a book of accounts."""
