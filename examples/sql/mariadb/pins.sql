-- The pin catalog the category enricher reads through its lookup query, MariaDB
-- dialect. `weir gen-pins` fills it with the pins `weir gen` produces events for.
CREATE TABLE IF NOT EXISTS categories (
  category_id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS pins (
  pin_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  category_id INT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
