using System.Text.Json;
using System.Text.Json.Serialization;
using Npgsql;
using NpgsqlTypes;

namespace NewBie.Host.Storage.Postgres;

/// <summary>
/// The app's data in PostgreSQL (Storage:Provider=postgres): one <see cref="NpgsqlDataSource"/> per process, and the
/// schema brought up to date once when this is made (<see cref="PostgresSchema"/>). Every table is named
/// <c>newbie_*</c>, beside Hangfire's own schema in the same database.
/// </summary>
public sealed class PostgresDatabase
{
    public PostgresDatabase(NpgsqlDataSource source)
    {
        Source = source;
        PostgresSchema.Migrate(source);
    }

    public NpgsqlDataSource Source { get; }

    /// <summary>
    /// How records kept whole as jsonb are written: enums by name (a reordered enum does not change stored meaning),
    /// computed properties (<c>IsFinished</c>) left out, dates as ISO 8601 with their UTC marker.
    /// </summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        IgnoreReadOnlyProperties = true,
        Converters = { new JsonStringEnumConverter() },
    };

    public static string ToJson<T>(T value) => JsonSerializer.Serialize(value, Json);

    public static T FromJson<T>(string json) => JsonSerializer.Deserialize<T>(json, Json)
        ?? throw new InvalidOperationException($"A stored {typeof(T).Name} is null.");

    /// <summary>PostgreSQL's timestamptz takes UTC only: a Local time is converted, an unspecified one taken as UTC.</summary>
    public static DateTime Utc(DateTime at) => at.Kind switch
    {
        DateTimeKind.Utc => at,
        DateTimeKind.Local => at.ToUniversalTime(),
        _ => DateTime.SpecifyKind(at, DateTimeKind.Utc),
    };

    public static NpgsqlParameter Text(string? value) => new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    public static NpgsqlParameter Jsonb(string json) => new() { Value = json, NpgsqlDbType = NpgsqlDbType.Jsonb };

    public static NpgsqlParameter Timestamp(DateTime? at) =>
        new() { Value = at is { } value ? Utc(value) : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };

    public static NpgsqlParameter Value<T>(T value) where T : notnull => new() { Value = value };
}

internal static class NpgsqlExtensions
{
    public static NpgsqlCommand Command(this NpgsqlDataSource source, string sql, params NpgsqlParameter[] parameters)
    {
        var command = source.CreateCommand(sql);
        command.Parameters.AddRange(parameters);
        return command;
    }

    public static NpgsqlCommand Command(this NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.AddRange(parameters);
        return command;
    }

    public static int Execute(this NpgsqlCommand command)
    {
        using (command) return command.ExecuteNonQuery();
    }

    public static T? Scalar<T>(this NpgsqlCommand command)
    {
        using (command) return command.ExecuteScalar() is T value ? value : default;
    }

    /// <summary>Each row read by <paramref name="read"/>, all of them read before the command is disposed.</summary>
    public static List<T> Rows<T>(this NpgsqlCommand command, Func<NpgsqlDataReader, T> read)
    {
        using (command)
        using (var reader = command.ExecuteReader())
        {
            var rows = new List<T>();
            while (reader.Read()) rows.Add(read(reader));
            return rows;
        }
    }
}
