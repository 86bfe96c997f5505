namespace Atelier.Storage;

/// <summary>
/// The free space of the disk Atelier writes objects to (or stages uploads on), read from the file system each time it
/// is asked: writes check it first, and readiness reports it.
/// </summary>
public sealed class StorageSpace(string folder, long minFreeBytes)
{
    public string Folder { get; } = Path.GetFullPath(folder);

    public long MinFreeBytes => minFreeBytes;

    /// <summary>The bytes free to this process on the folder's file system, or null when it cannot be read.</summary>
    public long? FreeBytes()
    {
        try
        {
            return new DriveInfo(Folder).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether the disk is under the threshold (with <paramref name="free"/> what is left).</summary>
    public bool IsLow(out long free)
    {
        free = FreeBytes() ?? long.MaxValue;
        return minFreeBytes > 0 && free < minFreeBytes;
    }

    /// <summary>Refuses a write of <paramref name="bytes"/> that would leave less than the threshold.</summary>
    public void EnsureRoom(long bytes = 0)
    {
        if (minFreeBytes > 0 && FreeBytes() is { } free && free - Math.Max(0, bytes) < minFreeBytes)
        {
            throw new StorageFullException($"{free} bytes are free on the storage disk, under the {minFreeBytes} it must keep");
        }
    }

    /// <summary>Whether a failed write failed for want of space (ENOSPC or a quota on Unix, a full disk on Windows).</summary>
    public static bool IsDiskFull(Exception e) => e switch
    {
        StorageFullException => true,
        IOException io when OperatingSystem.IsWindows() => (io.HResult & 0xFFFF) is 0x70 or 0x27,
        IOException io => io.HResult is 28 || (io.HResult is 122 && OperatingSystem.IsLinux()) || (io.HResult is 69 && OperatingSystem.IsMacOS()),
        _ => false,
    };
}
