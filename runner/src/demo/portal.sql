-- The customer-portal scenario's tables, in the SQL SQLite, PostgreSQL and
-- MySQL share (TIMESTAMP: wall-clock time in São Paulo, as the ERP stores it).
CREATE TABLE clientes (
  id INTEGER PRIMARY KEY,
  nome VARCHAR(120) NOT NULL,
  cpf VARCHAR(14) NOT NULL UNIQUE,
  email VARCHAR(120) UNIQUE,
  telefone VARCHAR(40),
  endereco VARCHAR(200),
  cidade VARCHAR(80),
  atualizado_em TIMESTAMP
);
CREATE TABLE contratos (
  id INTEGER PRIMARY KEY,
  cliente_id INTEGER NOT NULL,
  empreendimento VARCHAR(80) NOT NULL,
  unidade VARCHAR(40) NOT NULL,
  assinado_em DATE NOT NULL,
  FOREIGN KEY (cliente_id) REFERENCES clientes (id)
);
CREATE TABLE alteracoes_cadastrais (
  id INTEGER PRIMARY KEY,
  cliente_id INTEGER NOT NULL,
  status VARCHAR(20) NOT NULL,
  empreendimento VARCHAR(80) NOT NULL,
  solicitada_em TIMESTAMP NOT NULL,
  decidida_em TIMESTAMP,
  motivo VARCHAR(200),
  nome VARCHAR(120),
  email VARCHAR(120),
  telefone VARCHAR(40),
  endereco VARCHAR(200),
  cidade VARCHAR(80),
  FOREIGN KEY (cliente_id) REFERENCES clientes (id)
);
CREATE TABLE ocorrencias (
  id INTEGER PRIMARY KEY,
  cliente_id INTEGER NOT NULL,
  tipo VARCHAR(40) NOT NULL,
  descricao VARCHAR(200),
  registrada_em TIMESTAMP NOT NULL,
  FOREIGN KEY (cliente_id) REFERENCES clientes (id)
);
CREATE INDEX contratos_cliente ON contratos (cliente_id);
CREATE INDEX alteracoes_cliente ON alteracoes_cadastrais (cliente_id);
CREATE INDEX ocorrencias_cliente ON ocorrencias (cliente_id)
