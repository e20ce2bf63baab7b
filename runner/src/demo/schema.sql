-- The demo retail system: the tables `connectors/systems/retail-crm.yaml` describes.
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
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE TABLE purchases (
    id                INTEGER PRIMARY KEY,
    customer_id       INTEGER NOT NULL REFERENCES customers (id),
    purchased_at      TIMESTAMP NOT NULL,
    amount            DECIMAL(10, 2) NOT NULL,
    delivery_address  VARCHAR(120)
);
CREATE INDEX purchases_customer ON purchases (customer_id);
CREATE TABLE purchase_items (
    id           INTEGER PRIMARY KEY,
    purchase_id  INTEGER NOT NULL REFERENCES purchases (id),
    product      TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    price        DECIMAL(10, 2) NOT NULL
);
CREATE INDEX purchase_items_purchase ON purchase_items (purchase_id);
CREATE TABLE visits (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers (id),
    visited_at   TIMESTAMP NOT NULL,
    store        TEXT NOT NULL
);
CREATE INDEX visits_customer ON visits (customer_id);
CREATE TABLE customer_notes (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers (id),
    body         TEXT NOT NULL,
    written_at   TIMESTAMP NOT NULL
);
CREATE INDEX customer_notes_customer ON customer_notes (customer_id);
CREATE TABLE loans (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers (id),
    item         TEXT NOT NULL,
    lent_at      TIMESTAMP NOT NULL,
    returned_at  TIMESTAMP
);
CREATE INDEX loans_customer ON loans (customer_id);
CREATE TABLE invoices (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER REFERENCES customers (id),
    issued_at    DATE NOT NULL,
    amount       DECIMAL(10, 2) NOT NULL
);
CREATE INDEX invoices_customer ON invoices (customer_id);
