-- The entries table, exactly as the Flask service's model created it (Flask-SQLAlchemy:
-- id INT auto-increment, title VARCHAR(64), description VARCHAR(120), status BOOLEAN, indexes on
-- title and description). IF NOT EXISTS: a database the Flask app made is adopted as it is.
CREATE TABLE IF NOT EXISTS entry (
    id INT NOT NULL AUTO_INCREMENT,
    title VARCHAR(64) NOT NULL,
    description VARCHAR(120) NOT NULL,
    status BOOLEAN DEFAULT FALSE,
    PRIMARY KEY (id),
    INDEX ix_entry_title (title),
    INDEX ix_entry_description (description)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
