using LiteDB;

namespace NewBie.Host.Storage;

/// <summary>The rollback of an explicit LiteDB transaction whose work or commit failed.</summary>
public static class LiteDbTransactions
{
    /// <summary>
    /// Rolls back after <paramref name="failed"/>; returns null, or <paramref name="failed"/> when the rollback threw
    /// too. A commit that met a full disk leaves LiteDB unable to discard its pages ("discarded page must be writable"):
    /// that error must not replace the write's own (a full disk is answered 507, not 500), and the transaction then stays
    /// open with its collection locks, so the caller refuses its later writes at once with the returned cause instead of
    /// letting them wait a minute for those locks.
    /// </summary>
    public static Exception? RollBack(LiteDatabase db, Exception failed)
    {
        try
        {
            db.Rollback();
            return null;
        }
        catch (Exception e) when (e is LiteException or IOException)
        {
            return failed;
        }
    }
}
