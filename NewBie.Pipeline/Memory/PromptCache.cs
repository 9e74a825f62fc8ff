using NewBie.Pipeline.Sampling;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Memory;

/// <summary>
/// Least-recently-used cache of prompt conditioning, keyed by the exact encoder inputs (Gemma and Jina token ids after
/// templating) and bounded by the bytes its tensors hold on the device. Repeated prompts and the empty negative prompt
/// then skip both text encoders. Cached tensors live outside every dispose scope; the cache owns them.
/// Not thread-safe: the pipeline uses it under its generation lock.
/// </summary>
public sealed class PromptCache(long capacityBytes) : IDisposable
{
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = [];
    // Front = most recently used.
    private readonly LinkedList<Entry> _order = new();

    public long CapacityBytes { get; } = capacityBytes >= 0
        ? capacityBytes
        : throw new ArgumentOutOfRangeException(nameof(capacityBytes), "the prompt cache size cannot be negative");
    public long Bytes { get; private set; }
    public int Count => _entries.Count;

    public static string Key(IReadOnlyList<int> gemmaIds, IReadOnlyList<int> jinaIds) =>
        string.Join(',', gemmaIds) + "|" + string.Join(',', jinaIds);

    public static long SizeOf(Conditioning c) => SizeOf(c.CapFeats) + SizeOf(c.CapMask) + SizeOf(c.Pooled);

    private static long SizeOf(Tensor t) => t.numel() * t.ElementSize;

    public bool TryGet(string key, out Conditioning conditioning)
    {
        if (_entries.TryGetValue(key, out var node))
        {
            _order.Remove(node);
            _order.AddFirst(node);
            conditioning = node.Value.Conditioning;
            return true;
        }
        conditioning = null!;
        return false;
    }

    /// <summary>
    /// Takes ownership of <paramref name="conditioning"/> (detaching it from its dispose scope) unless it alone exceeds
    /// the capacity. Evicted entries are returned rather than disposed, because the caller's generation may still be
    /// using them (its positive prompt evicted by its own negative prompt); the caller disposes them when done.
    /// </summary>
    public bool Add(string key, Conditioning conditioning, List<Conditioning> evicted)
    {
        var size = SizeOf(conditioning);
        if (size > CapacityBytes || _entries.ContainsKey(key)) return false;
        while (Bytes + size > CapacityBytes)
        {
            var last = _order.Last!;
            _order.RemoveLast();
            _entries.Remove(last.Value.Key);
            Bytes -= last.Value.Bytes;
            evicted.Add(last.Value.Conditioning);
        }
        conditioning.CapFeats.DetachFromDisposeScope();
        conditioning.CapMask.DetachFromDisposeScope();
        conditioning.Pooled.DetachFromDisposeScope();
        _entries[key] = _order.AddFirst(new Entry(key, conditioning, size));
        Bytes += size;
        return true;
    }

    public static void Dispose(Conditioning c)
    {
        c.CapFeats.Dispose();
        c.CapMask.Dispose();
        c.Pooled.Dispose();
    }

    public void Dispose()
    {
        foreach (var entry in _order) Dispose(entry.Conditioning);
        _order.Clear();
        _entries.Clear();
        Bytes = 0;
    }

    private sealed record Entry(string Key, Conditioning Conditioning, long Bytes);
}
