-- The demo retail system: the tables `connectors/systems/retail-crm.yaml` describes.
-- Written in the SQL that SQLite, PostgreSQL and MySQL share (the demo
-- adapts key columns and MySQL's TIMESTAMP; see `Engine::ddl`).
CREATE TABLE customers (
    id            INTEGER PRIMARY KEY,
    first_name    VARCHAR(60) NOT NULL,
    last_name     VARCHAR(60) NOT NULL,
    email         VARCHAR(120) UNIQUE,
    phone         VARCHAR(30),
    street        VARCHAR(120),
    city          VARCHAR(60),
    birth_date    DATE,
    personnummer  VARCHAR(80) UNIQUE,
    kind          VARCHAR(20) NOT NULL,
    status        VARCHAR(20) NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE TABLE purchases (
    id                INTEGER PRIMARY KEY,
    customer_id       INTEGER NOT NULL,
    purchased_at      TIMESTAMP NOT NULL,
    amount            DECIMAL(10, 2) NOT NULL,
    delivery_address  VARCHAR(120),
    FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE INDEX purchases_customer ON purchases (customer_id);
CREATE TABLE purchase_items (
    id           INTEGER PRIMARY KEY,
    purchase_id  INTEGER NOT NULL,
    product      TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    price        DECIMAL(10, 2) NOT NULL,
    FOREIGN KEY (purchase_id) REFERENCES purchases (id)
);
CREATE INDEX purchase_items_purchase ON purchase_items (purchase_id);
CREATE TABLE visits (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL,
    visited_at   TIMESTAMP NOT NULL,
    store        TEXT NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE INDEX visits_customer ON visits (customer_id);
CREATE TABLE customer_notes (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL,
    body         TEXT NOT NULL,
    written_at   TIMESTAMP NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE INDEX customer_notes_customer ON customer_notes (customer_id);
CREATE TABLE loans (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL,
    item         TEXT NOT NULL,
    lent_at      TIMESTAMP NOT NULL,
    returned_at  TIMESTAMP NULL,
    FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE INDEX loans_customer ON loans (customer_id);
CREATE TABLE invoices (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER,
    issued_at    DATE NOT NULL,
    amount       DECIMAL(10, 2) NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE INDEX invoices_customer ON invoices (customer_id);
