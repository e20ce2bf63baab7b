-- The isp-billing scenario's tables, in the SQL SQLite, PostgreSQL and
-- MySQL share (keys auto-increment where the engine needs it to; TIMESTAMP becomes DATETIME on
-- MySQL: wall-clock time in São Paulo).
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name VARCHAR(120) NOT NULL,
  cpf VARCHAR(14) NOT NULL UNIQUE,
  email VARCHAR(120) UNIQUE,
  phone VARCHAR(30),
  address VARCHAR(160),
  city VARCHAR(60),
  status VARCHAR(20) NOT NULL,
  created_at TIMESTAMP NOT NULL
);
CREATE TABLE contracts (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL,
  plan VARCHAR(40) NOT NULL,
  status VARCHAR(20) NOT NULL,
  address VARCHAR(200),
  started_at TIMESTAMP NOT NULL,
  suspended_at TIMESTAMP NULL,
  monthly DECIMAL(10,2) NOT NULL,
  FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE TABLE logins (
  id INTEGER PRIMARY KEY,
  contract_id INTEGER,
  username VARCHAR(120) NOT NULL UNIQUE,
  last_seen TIMESTAMP NULL,
  FOREIGN KEY (contract_id) REFERENCES contracts (id)
);
CREATE TABLE equipment (
  id INTEGER PRIMARY KEY,
  contract_id INTEGER NOT NULL,
  item VARCHAR(60) NOT NULL,
  serial VARCHAR(40) NOT NULL,
  lent_at TIMESTAMP NOT NULL,
  returned_at TIMESTAMP NULL,
  FOREIGN KEY (contract_id) REFERENCES contracts (id)
);
CREATE TABLE service_orders (
  id INTEGER PRIMARY KEY,
  contract_id INTEGER NOT NULL,
  kind VARCHAR(40) NOT NULL,
  opened_at TIMESTAMP NOT NULL,
  FOREIGN KEY (contract_id) REFERENCES contracts (id)
);
CREATE INDEX contracts_customer ON contracts (customer_id);
CREATE INDEX logins_contract ON logins (contract_id);
CREATE INDEX equipment_contract ON equipment (contract_id)
