-- The pin catalog the category enricher reads through its lookup query,
-- SingleStore dialect: categories is small and joined everywhere, so it is a
-- reference table (a copy on every node); pins is sharded on its key.
CREATE REFERENCE TABLE IF NOT EXISTS categories (
  category_id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
);

CREATE TABLE IF NOT EXISTS pins (
  pin_id BIGINT UNSIGNED NOT NULL,
  category_id INT NOT NULL,
  SHARD KEY (pin_id),
  PRIMARY KEY (pin_id)
);
