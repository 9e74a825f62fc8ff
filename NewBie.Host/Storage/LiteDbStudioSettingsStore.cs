using LiteDB;
using NewBie.Host.Studio;

namespace NewBie.Host.Storage;

/// <summary>The studio's per-user settings in the app database, one record per user.</summary>
public sealed class LiteDbStudioSettingsStore(AppDatabase database) : IStudioSettingsStore
{
    private readonly ILiteCollection<StudioSettings> _settings = database.Collection<StudioSettings>("studio_settings");

    public StudioSettings? Find(string userId) => _settings.FindById(userId);

    public void Save(StudioSettings settings) => _settings.Upsert(settings);
}
