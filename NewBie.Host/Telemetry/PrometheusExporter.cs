using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Prometheus;

namespace NewBie.Host.Telemetry;

/// <summary>
/// Publishes the instruments of one <see cref="System.Diagnostics.Metrics.Meter"/> in a prometheus-net registry of
/// its own, keeping Prometheus' types: Counter → counter, Histogram → histogram (buckets from the instrument's
/// advice), ObservableGauge → gauge read at scrape time. prometheus-net's own MeterAdapter is not used because it
/// turns counters into gauges and listens to every meter of the process.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Meter _meter;
    private readonly MetricFactory _factory;
    private readonly ConcurrentDictionary<Instrument, Func<string[], Collector>> _collectors = new();
    private volatile bool _disposed;

    public PrometheusExporter(NewBieMetrics metrics)
    {
        _meter = metrics.Meter;
        Registry = Metrics.NewCustomRegistry();
        _factory = Metrics.WithCustomRegistry(Registry);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == _meter) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<int>((i, value, tags, _) => Record(i, value, tags));
        _listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Record(i, value, tags));
        _listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Record(i, value, tags));
        _listener.Start();
        Registry.AddBeforeCollectCallback(() =>
        {
            if (!_disposed) _listener.RecordObservableInstruments();
        });
    }

    public CollectorRegistry Registry { get; }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var sorted = tags.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var labelValues = sorted.Select(t => t.Value?.ToString() ?? "").ToArray();
        var collector = _collectors.GetOrAdd(instrument, CreateCollector)(sorted.Select(t => t.Key).ToArray());
        switch (collector)
        {
            case Counter counter: (labelValues.Length == 0 ? counter : (ICounter)counter.WithLabels(labelValues)).Inc(value); break;
            case Histogram histogram: (labelValues.Length == 0 ? histogram : (IHistogram)histogram.WithLabels(labelValues)).Observe(value); break;
            case Gauge gauge: (labelValues.Length == 0 ? gauge : (IGauge)gauge.WithLabels(labelValues)).Set(value); break;
        }
    }

    /// <summary>Label names are known only from the first measurement, so the Prometheus metric is made then (get-or-add by name).</summary>
    private Func<string[], Collector> CreateCollector(Instrument instrument)
    {
        var name = instrument.Name;
        var help = instrument.Description ?? name;
        return instrument switch
        {
            Counter<int> or Counter<long> or Counter<double> => labels => _factory.CreateCounter(name, help, labels),
            Histogram<double> h => labels => _factory.CreateHistogram(name, help, labels,
                new HistogramConfiguration { Buckets = h.Advice?.HistogramBucketBoundaries?.ToArray() ?? Histogram.ExponentialBuckets(0.01, 2, 16) }),
            _ => labels => _factory.CreateGauge(name, help, labels),
        };
    }

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
    }
}
