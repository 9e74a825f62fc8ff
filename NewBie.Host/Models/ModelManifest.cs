using System.Globalization;
using System.Text.Json;

namespace NewBie.Host.Models;

/// <summary>One file of the model repository; Size and Sha256 are null where the manifest says "unknown".</summary>
public sealed record ManifestFile(string Path, string Component, bool Required, long? Size, string? Sha256);

/// <summary>
/// models.manifest.json: which files of the Hugging Face repository the pipeline needs, and what is known about them.
/// "unknown" sizes and digests stay unknown: they are not checked rather than guessed.
/// </summary>
public sealed record ModelManifest(string Repository, string Revision, string Endpoint, IReadOnlyList<ManifestFile> Files)
{
    public const string FileName = "models.manifest.json", DefaultEndpoint = "https://huggingface.co";

    /// <summary>The manifest shipped beside the binary.</summary>
    public static string DefaultPath => System.IO.Path.Combine(AppContext.BaseDirectory, FileName);

    public static ModelManifest Load(string path) => Parse(File.ReadAllText(path), path);

    public static ModelManifest Parse(string json, string source = FileName)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        string Text(JsonElement e, string name) =>
            e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s
                ? s : throw new InvalidDataException($"{source}: '{name}' is missing");
        var files = new List<ManifestFile>();
        foreach (var f in root.GetProperty("files").EnumerateArray())
        {
            var path = Text(f, "path");
            // Paths become local file names: never absolute, never climbing out of the models folder.
            if (System.IO.Path.IsPathRooted(path) || path.Split('/').Any(s => s is "" or "." or ".."))
                throw new InvalidDataException($"{source}: file path '{path}' must be relative, with no . or .. segments");
            long? size = f.TryGetProperty("size", out var sz) && sz.ValueKind == JsonValueKind.Number ? sz.GetInt64()
                : sz.ValueKind == JsonValueKind.String && long.TryParse(sz.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed
                : null;
            string? sha = f.TryGetProperty("sha256", out var h) && h.ValueKind == JsonValueKind.String && h.GetString() is { Length: 64 } hex && hex.All(char.IsAsciiHexDigit)
                ? hex.ToLowerInvariant() : null;
            var required = !f.TryGetProperty("required", out var r) || r.ValueKind != JsonValueKind.False;
            files.Add(new ManifestFile(path, f.TryGetProperty("component", out var c) ? c.GetString() ?? "" : "", required, size, sha));
        }
        var endpoint = root.TryGetProperty("endpoint", out var ep) && ep.GetString() is { Length: > 0 } e ? e : DefaultEndpoint;
        return new ModelManifest(Text(root, "repository"), root.TryGetProperty("revision", out var rev) ? rev.GetString() ?? "main" : "main", endpoint, files);
    }

    /// <summary>{endpoint}/{repo}/resolve/{revision}/{path}, the Hugging Face download URL (mirrors use the same shape).</summary>
    public Uri UrlOf(ManifestFile file, string endpoint)
    {
        static string Escape(string p) => string.Join('/', p.Split('/').Select(Uri.EscapeDataString));
        return new Uri($"{endpoint.TrimEnd('/')}/{Escape(Repository)}/resolve/{Uri.EscapeDataString(Revision)}/{Escape(file.Path)}");
    }
}
