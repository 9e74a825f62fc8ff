using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace NewBie.Host.Models;

public sealed class ModelDownloadException(string message) : Exception(message);

/// <summary>Progress of one file: bytes on disk so far (a resumed download starts above zero) out of the total when known.</summary>
public sealed record DownloadProgress(ManifestFile File, long Done, long? Total);

public enum DownloadOutcome { Downloaded, AlreadyPresent, NotFound }

/// <summary>
/// Downloads model files: resumable (the bytes go to "{file}.part", a later run continues it with an HTTP Range
/// request), checked against the manifest's size and SHA-256 where known, and moved into place only after that check,
/// so a file under its real name is always complete.
/// </summary>
public sealed class ModelDownloader(HttpClient http, ModelManifest manifest, string modelsDir, string endpoint, string? token)
{
    public const string PartSuffix = ".part";

    public async Task<DownloadOutcome> DownloadAsync(ManifestFile file, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var target = Path.Combine(modelsDir, file.Path.Replace('/', Path.DirectorySeparatorChar));
        if (File.Exists(target) && (file.Size is null || new FileInfo(target).Length == file.Size))
            return DownloadOutcome.AlreadyPresent;
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var part = target + PartSuffix;
        var offset = File.Exists(part) ? new FileInfo(part).Length : 0;

        using var request = new HttpRequestMessage(HttpMethod.Get, manifest.UrlOf(file, endpoint));
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

        if (response.StatusCode == HttpStatusCode.NotFound) return DownloadOutcome.NotFound;
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // The part already holds the whole file: nothing left to fetch, only to check.
        }
        else
        {
            if (!response.IsSuccessStatusCode)
                throw new ModelDownloadException($"{file.Path}: {request.RequestUri} answered {(int)response.StatusCode} {response.ReasonPhrase}");
            // A server that ignores Range sends the whole file (200): start the part over.
            if (response.StatusCode != HttpStatusCode.PartialContent) offset = 0;
            var total = file.Size ?? (response.Content.Headers.ContentLength is { } length ? offset + length : null);
            await using var output = new FileStream(part, offset > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            await using var input = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[1 << 16];
            var done = offset;
            progress?.Report(new DownloadProgress(file, done, total));
            int read;
            while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                done += read;
                progress?.Report(new DownloadProgress(file, done, total));
            }
        }

        await CheckAsync(file, part, cancellationToken);
        File.Move(part, target, overwrite: true);
        return DownloadOutcome.Downloaded;
    }

    /// <summary>Size and SHA-256 where the manifest knows them; a part that fails is deleted, as resuming it cannot help.</summary>
    private static async Task CheckAsync(ManifestFile file, string part, CancellationToken cancellationToken)
    {
        var length = new FileInfo(part).Length;
        string? problem = null;
        if (file.Size is { } size && length != size) problem = $"{file.Path}: {length} bytes downloaded, the manifest says {size}";
        else if (file.Sha256 is { } expected && await Sha256Async(part, cancellationToken) is var actual && actual != expected)
            problem = $"{file.Path}: SHA-256 {actual} does not match the manifest's {expected}";
        if (problem is null) return;
        File.Delete(part);
        throw new ModelDownloadException(problem);
    }

    public static async Task<string> Sha256Async(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
    }
}
