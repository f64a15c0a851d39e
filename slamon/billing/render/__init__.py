"""A statement document rendered for people and spreadsheets: csv, xlsx, pdf, text."""
