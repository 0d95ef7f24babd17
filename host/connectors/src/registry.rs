//! The connector registry: a node's spec → its factory. One line per
//! connector type.

use weir_spec::{SinkConnector, SinkSpec, SourceConnector, SourceSpec};

use crate::{SinkFactory, SourceFactory};

/// The factory of a source node of job `job`.
pub fn source_factory(spec: &SourceSpec, job: &str) -> Box<dyn SourceFactory> {
    match &spec.connector {
        SourceConnector::Generator(g) => Box::new(crate::generator::GeneratorFactory::new(g)),
        SourceConnector::File(f) => Box::new(crate::file::FileSourceFactory::new(f, spec.timestamps)),
        SourceConnector::Kafka(k) => Box::new(crate::kafka::KafkaSourceFactory::new(k, spec.timestamps, job, &spec.id)),
    }
}

/// The factory of a sink node of job `job`.
pub fn sink_factory(spec: &SinkSpec, job: &str) -> Box<dyn SinkFactory> {
    match &spec.connector {
        SinkConnector::Stdout => Box::new(crate::sink::StdoutFactory),
        SinkConnector::Blackhole => Box::new(crate::sink::BlackholeFactory),
        SinkConnector::File(f) => Box::new(crate::sink::FileSinkFactory { path: f.path.clone() }),
        SinkConnector::Kafka(k) => Box::new(crate::kafka::KafkaSinkFactory::new(k, job, &spec.id)),
    }
}
