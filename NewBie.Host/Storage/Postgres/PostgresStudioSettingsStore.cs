using NewBie.Host.Studio;
using static NewBie.Host.Storage.Postgres.PostgresDatabase;

namespace NewBie.Host.Storage.Postgres;

/// <summary>The studio's per-user settings in PostgreSQL, one jsonb row per user.</summary>
public sealed class PostgresStudioSettingsStore(PostgresDatabase database) : IStudioSettingsStore
{
    public StudioSettings? Find(string userId) =>
        database.Source.Command("SELECT settings FROM newbie_studio_settings WHERE user_id = $1", Text(userId))
            .Rows(r => FromJson<StudioSettings>(r.GetString(0))).FirstOrDefault();

    public void Save(StudioSettings settings) =>
        database.Source.Command("""
            INSERT INTO newbie_studio_settings (user_id, settings) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings
            """, Text(settings.UserId), Jsonb(ToJson(settings))).Execute();
}
