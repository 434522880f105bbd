//! Registering metric families on the registry, and reading counts back for the report.

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

fn register<M: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: M) -> M {
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

pub fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help).expect("valid metric"))
}

pub fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    register(r, IntGauge::new(name, help).expect("valid metric"))
}

pub fn float_gauge(r: &Registry, name: &str, help: &str) -> Gauge {
    register(r, Gauge::new(name, help).expect("valid metric"))
}

pub fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let opts = Opts::new(name, help);
    register(r, IntCounterVec::new(opts, labels).expect("valid metric"))
}

pub fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let opts = Opts::new(name, help);
    register(r, IntGaugeVec::new(opts, labels).expect("valid metric"))
}

pub fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(r, Histogram::with_opts(opts).expect("valid metric"))
}

pub fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(r, HistogramVec::new(opts, labels).expect("valid metric"))
}

/// Create the zero-valued series of each value of a one-label family.
pub fn preset<'a>(family: &IntCounterVec, values: impl IntoIterator<Item = &'a str>) {
    for v in values {
        family.with_label_values(&[v]);
    }
}

/// The count of each of `values` in a one-label family, in that order.
pub fn counts(family: &IntCounterVec, values: &[&'static str]) -> Vec<(&'static str, u64)> {
    values
        .iter()
        .map(|v| (*v, family.with_label_values(&[*v]).get()))
        .collect()
}
