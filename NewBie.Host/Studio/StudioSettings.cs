using LiteDB;

namespace NewBie.Host.Studio;

/// <summary>The studio's prompt and parameters as a user last submitted them: the form opens with them next time.</summary>
public sealed class StudioSettings
{
    [BsonId] public string UserId { get; set; } = "";
    public int Width { get; set; } = 1024;
    public int Height { get; set; } = 1024;
    public int Steps { get; set; } = 28;
    public double Guidance { get; set; } = 5;
    public string Sampler { get; set; } = "euler";
    /// <summary>Null: a new random seed per submit.</summary>
    public long? Seed { get; set; }
    public int Count { get; set; } = 1;
    public string NegativePrompt { get; set; } = "";
    public string Prompt { get; set; } = "";
}

/// <summary>Where the studio keeps each user's last settings (LiteDB by default; chosen in StorageSetup).</summary>
public interface IStudioSettingsStore
{
    StudioSettings? Find(string userId);

    void Save(StudioSettings settings);
}
