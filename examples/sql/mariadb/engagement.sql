-- The Pinterest engagement table, MariaDB dialect (the local stand-in for
-- SingleStore). The SingleStore version is in ../singlestore/engagement.sql.
CREATE TABLE IF NOT EXISTS engagement (
  kafka_partition INT NOT NULL,
  kafka_offset BIGINT NOT NULL,
  event_id CHAR(24) NOT NULL,
  event_time DATETIME(3) NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  pin_id BIGINT UNSIGNED NOT NULL,
  action VARCHAR(16) NOT NULL,
  app VARCHAR(16) NULL,
  ip VARCHAR(45) NULL,
  user_agent VARCHAR(512) NULL,
  country CHAR(2) NULL,
  region VARCHAR(128) NULL,
  city VARCHAR(128) NULL,
  latitude DOUBLE NULL,
  longitude DOUBLE NULL,
  category VARCHAR(64) NULL,
  ingested_at DATETIME(3) NOT NULL,
  PRIMARY KEY (kafka_partition, kafka_offset),
  KEY by_time (event_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
