using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Atelier.Data;

/// <summary>
/// How a lock name becomes what the database locks, so that an operator (or a test) can take the same lock by hand.
/// </summary>
public static class DatabaseLocks
{
    /// <summary>
    /// The PostgreSQL advisory lock key of <paramref name="name"/>: the first eight bytes of the SHA-256 of its UTF-8
    /// bytes, read as a big-endian signed 64-bit integer. The same key in SQL is <see cref="AdvisoryKeySql"/>.
    /// </summary>
    public static long AdvisoryKey(string name)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(name), hash);
        return BinaryPrimitives.ReadInt64BigEndian(hash);
    }

    /// <summary>
    /// <see cref="AdvisoryKey"/> as a PostgreSQL expression of the text parameter <c>$1</c> (PostgreSQL 11 or later):
    /// <c>SELECT pg_try_advisory_lock(…)</c> with it takes the lock a server would take.
    /// </summary>
    public const string AdvisoryKeySql = "('x' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 16))::bit(64)::bigint";

    /// <summary>
    /// The lock file of <paramref name="name"/> for the SQLite database <paramref name="databaseFile"/>: in the folder
    /// <c>&lt;database file&gt;.locks</c> beside it, named by the lock name with every character other than letters,
    /// digits, <c>-</c>, <c>_</c>, <c>.</c> and <c>~</c> percent-encoded (<c>atelier:leader</c> → <c>atelier%3Aleader</c>).
    /// Holding it is an exclusive <c>flock</c> on that file (what <c>flock(1)</c> takes, too).
    /// </summary>
    public static string LockFile(string databaseFile, string name) =>
        Path.Combine(Path.GetFullPath(databaseFile) + ".locks", Uri.EscapeDataString(name));
}
