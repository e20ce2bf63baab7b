-- The retail-pos scenario's tables: one store's account in a point-of-sale
-- ERP (one database per account), in the SQL SQLite, PostgreSQL and MySQL
-- share (TIMESTAMP becomes DATETIME on MySQL).
CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  company_name VARCHAR(120) NOT NULL,
  cnpj VARCHAR(18) NOT NULL,
  owner_name VARCHAR(120) NOT NULL,
  owner_email VARCHAR(120) NOT NULL,
  phone VARCHAR(30),
  created_at TIMESTAMP NOT NULL
);
CREATE TABLE stations (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  name VARCHAR(40) NOT NULL,
  active INTEGER NOT NULL,
  last_sync_at TIMESTAMP NULL,
  FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  name VARCHAR(120) NOT NULL,
  cpf VARCHAR(14),
  email VARCHAR(120),
  phone VARCHAR(30),
  created_at TIMESTAMP NOT NULL,
  FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE TABLE products (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  name VARCHAR(120) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE TABLE sales (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  customer_id INTEGER,
  station_id INTEGER NOT NULL,
  total DECIMAL(10,2) NOT NULL,
  sold_at TIMESTAMP NOT NULL,
  FOREIGN KEY (account_id) REFERENCES accounts (id),
  FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE TABLE sale_items (
  id INTEGER PRIMARY KEY,
  sale_id INTEGER NOT NULL,
  product_id INTEGER NOT NULL,
  quantity INTEGER NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  FOREIGN KEY (sale_id) REFERENCES sales (id),
  FOREIGN KEY (product_id) REFERENCES products (id)
);
CREATE TABLE stock_movements (
  id INTEGER PRIMARY KEY,
  product_id INTEGER NOT NULL,
  quantity INTEGER NOT NULL,
  moved_at TIMESTAMP NOT NULL,
  FOREIGN KEY (product_id) REFERENCES products (id)
);
CREATE TABLE finance_entries (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  kind VARCHAR(20) NOT NULL,
  description VARCHAR(200) NOT NULL,
  amount DECIMAL(10,2) NOT NULL,
  due_at DATE NOT NULL,
  FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE TABLE service_orders (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  description VARCHAR(200) NOT NULL,
  opened_at TIMESTAMP NOT NULL,
  FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE TABLE consignments (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  product_id INTEGER NOT NULL,
  quantity INTEGER NOT NULL,
  sent_at TIMESTAMP NOT NULL,
  FOREIGN KEY (account_id) REFERENCES accounts (id),
  FOREIGN KEY (product_id) REFERENCES products (id)
)
