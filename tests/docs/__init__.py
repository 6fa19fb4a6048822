"""Checks that the pages of docs/ are true: their tables match the code, their examples and recipes
run as written, the tests they name exist."""
