using System.Text.Json;

namespace NewBie.Host.Tests.Telemetry;

/// <summary>
/// The compact JSON log files (logs/newbie-*.json) of a server's data folder, and a wait for events in them that
/// reads the files again when they change (inotify, through FileSystemWatcher), not on a timer.
/// </summary>
internal static class LogFiles
{
    /// <summary>Every event of the log files in <paramref name="dataDir"/>, oldest file first; none while there is no log folder.</summary>
    public static List<JsonElement> Read(string dataDir)
    {
        var folder = Path.Combine(dataDir, "logs");
        if (!Directory.Exists(folder)) return [];
        return Directory.GetFiles(folder, "newbie-*.json").Order()
            .SelectMany(file =>
            {
                // The sink holds the file open: share it.
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                // A line the sink is still writing has no newline yet: only whole lines are events.
                var text = reader.ReadToEnd();
                return text[..(text.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(line => JsonDocument.Parse(line).RootElement.Clone()).ToList();
            })
            .ToList();
    }

    /// <summary>The events once <paramref name="done"/> holds for them; fails with the events so far after <paramref name="timeout"/>.</summary>
    public static async Task<List<JsonElement>> WaitForAsync(string dataDir, Func<List<JsonElement>, bool> done, TimeSpan timeout)
    {
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Wake() => Volatile.Read(ref changed).TrySetResult();
        // The whole data folder: the log folder may not exist yet. An overflow (Error) also means: read again.
        using var watcher = new FileSystemWatcher(dataDir)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
        };
        watcher.Changed += (_, _) => Wake();
        watcher.Created += (_, _) => Wake();
        watcher.Renamed += (_, _) => Wake();
        watcher.Error += (_, _) => Wake();
        watcher.EnableRaisingEvents = true;
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            // Taken before the read: a write after it completes the signal.
            var wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref changed, wake);
            var events = Read(dataDir);
            if (done(events)) return events;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) Assert.Fail($"log events so far:\n{string.Join("\n", events)}");
            await Task.WhenAny(wake.Task, Task.Delay(left));
        }
    }
}
