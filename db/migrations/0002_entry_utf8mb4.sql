-- Any Unicode (emoji, CJK) must be stored exactly. A table adopted from the Flask service may use
-- utf8mb3 or latin1; converting to utf8mb4 keeps every existing row (utf8mb4 is a superset) and is
-- a no-op on a table already in utf8mb4.
ALTER TABLE entry CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
