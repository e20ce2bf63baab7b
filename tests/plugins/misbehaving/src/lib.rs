//! A plugin that misbehaves the way its URL says (`misbehave:panic`,
//! `misbehave:hang`, `misbehave:leaky`), for the tests of the plugin boundary: a panic must
//! come back as an error naming the plugin and the call, a hang must end
//! at the host's time limit.

use lethe_connector::plugin::PluginConnector;
use lethe_connector::{
    Capabilities, Check, Connector, ConnectorError, ConnectorInfo, Delete, ErrorKind, Insert,
    OpenOptions, Result, RowSink, Schema, Select, Tally, TxMode, Update,
};

pub struct Misbehaving {
    how: String,
}

impl Misbehaving {
    fn act(&self, call: &str) -> Result<()> {
        tracing::info!(call, "misbehaving plugin called");
        match self.how.as_str() {
            "panic" => panic!("misbehaving on purpose during {call}"),
            "hang" => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            // A careless plugin quoting a personal value in its error.
            "leaky" => Err(ConnectorError::new(
                ErrorKind::Constraint,
                "Duplicate entry 'anna.svensson@example.se' for key 'email'",
            )),
            _ => Err(ConnectorError::new(ErrorKind::Unsupported, "nothing here")),
        }
    }
}

#[async_trait::async_trait]
impl PluginConnector for Misbehaving {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "misbehaving".into(),
            version: "0.0.1".into(),
            capabilities: Capabilities {
                sql_criteria: false,
                sql_checks: false,
                transactions: false,
            },
        }
    }

    async fn open(options: &OpenOptions) -> Result<Self> {
        let how = options
            .url
            .strip_prefix("misbehave:")
            .ok_or_else(|| ConnectorError::new(ErrorKind::Invalid, "want misbehave:HOW"))?;
        Ok(Misbehaving {
            how: how.to_owned(),
        })
    }
}

#[async_trait::async_trait]
impl Connector for Misbehaving {
    fn info(&self) -> ConnectorInfo {
        Self::describe()
    }
    async fn introspect(&mut self) -> Result<Schema> {
        self.act("introspect")?;
        Ok(Schema::default())
    }
    async fn begin(&mut self, _mode: TxMode) -> Result<()> {
        Ok(())
    }
    async fn commit(&mut self) -> Result<()> {
        Ok(())
    }
    async fn rollback(&mut self) -> Result<()> {
        Ok(())
    }
    async fn select(&mut self, _query: &Select, _sink: &mut dyn RowSink) -> Result<()> {
        self.act("select")
    }
    async fn tally(&mut self, _query: &Tally) -> Result<Vec<u64>> {
        self.act("tally").map(|()| vec![])
    }
    async fn check(&mut self, _check: &Check) -> Result<bool> {
        self.act("check").map(|()| false)
    }
    async fn update(&mut self, _update: &Update) -> Result<u64> {
        self.act("update").map(|()| 0)
    }
    async fn delete(&mut self, _delete: &Delete) -> Result<u64> {
        self.act("delete").map(|()| 0)
    }
    async fn insert(&mut self, _insert: &Insert) -> Result<u64> {
        self.act("insert").map(|()| 0)
    }
}

lethe_connector::export_connector!(Misbehaving);
