-- The salon-crm scenario's tables, in the SQL SQLite, PostgreSQL and MySQL
-- share (TIMESTAMP becomes TIMESTAMP(0) / DATETIME: wall-clock time in
-- Moscow, as the salon's software stores it).
CREATE TABLE masters (
  id INTEGER PRIMARY KEY,
  name VARCHAR(80) NOT NULL
);
CREATE TABLE clients (
  id INTEGER PRIMARY KEY,
  full_name VARCHAR(120) NOT NULL,
  phone VARCHAR(40),
  email VARCHAR(120),
  birth_date DATE,
  comment VARCHAR(500),
  created_at TIMESTAMP NOT NULL
);
CREATE TABLE visits (
  id INTEGER PRIMARY KEY,
  client_id INTEGER NOT NULL,
  master_id INTEGER NOT NULL,
  service VARCHAR(80) NOT NULL,
  visited_at TIMESTAMP NOT NULL,
  status VARCHAR(20) NOT NULL,
  FOREIGN KEY (client_id) REFERENCES clients (id),
  FOREIGN KEY (master_id) REFERENCES masters (id)
);
CREATE TABLE visit_notes (
  id INTEGER PRIMARY KEY,
  visit_id INTEGER NOT NULL,
  body VARCHAR(500) NOT NULL,
  written_at TIMESTAMP NOT NULL,
  FOREIGN KEY (visit_id) REFERENCES visits (id)
);
CREATE TABLE payments (
  id INTEGER PRIMARY KEY,
  client_id INTEGER,
  amount DECIMAL(10,2) NOT NULL,
  paid_at TIMESTAMP NOT NULL,
  method VARCHAR(40) NOT NULL,
  FOREIGN KEY (client_id) REFERENCES clients (id)
);
CREATE TABLE sms_messages (
  id INTEGER PRIMARY KEY,
  client_id INTEGER NOT NULL,
  phone VARCHAR(40) NOT NULL,
  body VARCHAR(500) NOT NULL,
  sent_at TIMESTAMP NOT NULL,
  FOREIGN KEY (client_id) REFERENCES clients (id)
);
CREATE INDEX visits_client ON visits (client_id);
CREATE INDEX visit_notes_visit ON visit_notes (visit_id);
CREATE INDEX payments_client ON payments (client_id);
CREATE INDEX sms_client ON sms_messages (client_id)
