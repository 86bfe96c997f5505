using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Atelier.Core.Models;

/// <summary>What the bytes of a file are, learned while they stream past once.</summary>
public sealed record BlobFacts(string Sha256, long Size, string Format, string DetectedKind, string AutoV2, string? AutoV3,
    string? MetadataJson, IReadOnlyList<string> TensorNames);

/// <summary>
/// Inspects a file as it streams, without holding it: the SHA-256 of the whole file (AutoV2 is its first 10 hex
/// digits), and for safetensors the header (kept, up to 16 MiB), the tensor names, the metadata, and the SHA-256 of
/// the data after the header (AutoV3, the LoRA short hash). Content decides the format, never the file name.
/// </summary>
public sealed class BlobInspector : IDisposable
{
    private const int HeadCap = 16 * 1024 * 1024;
    private readonly IncrementalHash _all = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private IncrementalHash? _afterHeader;
    private byte[] _head = new byte[64 * 1024];
    private int _headLength;
    private long _total;
    private long? _headerEnd;
    private bool _headerDecided;

    public long BytesSeen => _total;

    public void Append(ReadOnlySpan<byte> data)
    {
        _all.AppendData(data);
        var chunkStart = _total;
        if (_headLength < HeadCap)
        {
            var take = Math.Min(data.Length, HeadCap - _headLength);
            if (_headLength + take > _head.Length)
            {
                Array.Resize(ref _head, Math.Min(HeadCap, Math.Max(_head.Length * 2, _headLength + take)));
            }

            data[..take].CopyTo(_head.AsSpan(_headLength));
            _headLength += take;
        }

        if (!_headerDecided && _headLength >= 9)
        {
            _headerDecided = true;
            var n = BinaryPrimitives.ReadUInt64LittleEndian(_head);
            if (n > 2 && n < HeadCap && _head[8] == (byte)'{')
            {
                _headerEnd = 8 + (long)n;
                _afterHeader = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                // Bytes already seen past the header end (only possible in this very chunk).
            }
        }

        if (_afterHeader is not null && _headerEnd is { } end && chunkStart + data.Length > end)
        {
            var from = (int)Math.Max(0, end - chunkStart);
            _afterHeader.AppendData(data[from..]);
        }

        _total += data.Length;
    }

    public BlobFacts Finish()
    {
        var sha = Convert.ToHexStringLower(_all.GetHashAndReset());
        var head = _head.AsSpan(0, _headLength);
        string format;
        var kind = "unknown";
        string? autoV3 = null;
        string? metadata = null;
        IReadOnlyList<string> names = [];
        if (_headerEnd is { } end && end <= _headLength && end <= _total && TryParseSafetensors(head[8..(int)end], out names, out var meta))
        {
            format = "safetensors";
            metadata = meta is null ? null : JsonSerializer.Serialize(meta);
            kind = DetectKind(names, meta);
            autoV3 = meta is not null && meta.TryGetValue("sshs_model_hash", out var sshs) && sshs.Length >= 12
                ? sshs[..12].ToLowerInvariant()
                : Convert.ToHexStringLower(_afterHeader!.GetHashAndReset())[..12];
        }
        else
        {
            format = SniffFormat(head, _total);
            if (format == "onnx")
            {
                kind = "onnx";
            }
        }

        return new BlobFacts(sha, _total, format, kind, sha[..10], autoV3, metadata, names);
    }

    private static bool TryParseSafetensors(ReadOnlySpan<byte> header, out IReadOnlyList<string> names, out Dictionary<string, string>? metadata)
    {
        names = [];
        metadata = null;
        try
        {
            var reader = new Utf8JsonReader(header.TrimEnd((byte)' '));
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return false;
            }

            var list = new List<string>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    metadata = p.Value.EnumerateObject().Where(m => m.Value.ValueKind == JsonValueKind.String)
                        .ToDictionary(m => m.Name, m => m.Value.GetString()!);
                    continue;
                }

                if (p.Value.ValueKind != JsonValueKind.Object || !p.Value.TryGetProperty("dtype", out _) || !p.Value.TryGetProperty("data_offsets", out _))
                {
                    return false;
                }

                list.Add(p.Name);
            }

            names = list;
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>The model kind a safetensors file's metadata and tensor names point to.</summary>
    public static string DetectKind(IReadOnlyList<string> names, Dictionary<string, string>? meta)
    {
        if (meta is not null)
        {
            if (meta.TryGetValue("modelspec.architecture", out var arch) && arch.EndsWith("/lora", StringComparison.Ordinal))
            {
                return "lora";
            }

            if (meta.ContainsKey("ss_network_module"))
            {
                return "lora";
            }
        }

        if (names.Any(n => n.StartsWith("lora_unet_", StringComparison.Ordinal) || n.StartsWith("lora_te", StringComparison.Ordinal)
                           || n.Contains(".lora_down.", StringComparison.Ordinal) || n.Contains("lora_A.", StringComparison.Ordinal)
                           || n.StartsWith("hada_", StringComparison.Ordinal) || n.StartsWith("lokr_", StringComparison.Ordinal)))
        {
            return "lora";
        }

        if (names.Count(n => n.StartsWith("model.diffusion_model.", StringComparison.Ordinal)) > 5)
        {
            return "checkpoint";
        }

        if (names.Any(n => n.StartsWith("control_model.", StringComparison.Ordinal) || n.Contains("input_hint_block", StringComparison.Ordinal)))
        {
            return "controlnet";
        }

        if (names.Any(n => n.StartsWith("string_to_param", StringComparison.Ordinal) || n is "emb_params" or "clip_l" or "clip_g"))
        {
            return "embedding";
        }

        if (names.Any(n => n.StartsWith("decoder.", StringComparison.Ordinal)) && names.Any(n => n.StartsWith("encoder.", StringComparison.Ordinal))
            && names.Any(n => n.Contains("quant_conv", StringComparison.Ordinal)))
        {
            return "vae";
        }

        return "unknown";
    }

    private static string SniffFormat(ReadOnlySpan<byte> head, long total)
    {
        if (head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5)
        {
            return "pickle";
        }

        if (head.StartsWith("PK\u0003\u0004"u8))
        {
            return "pickle"; // PyTorch's zip checkpoint: a pickle inside a zip
        }

        // ONNX ModelProto starts with field 1 (ir_version, varint): tag 0x08 and a small version.
        if (head.Length >= 2 && head[0] == 0x08 && head[1] is >= 3 and <= 20)
        {
            return "onnx";
        }

        if (total == head.Length && total > 0)
        {
            var trimmed = head.TrimStart(" \t\r\n"u8);
            if (trimmed.Length > 0 && trimmed[0] is (byte)'{' or (byte)'[')
            {
                try
                {
                    using var _ = JsonDocument.Parse(head.ToArray());
                    return "json";
                }
                catch (JsonException)
                {
                    // not JSON after all
                }
            }

            if (IsText(head))
            {
                return "text";
            }
        }

        return "unknown";
    }

    private static bool IsText(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var text = new UTF8Encoding(false, true).GetString(bytes);
            return !text.Any(c => char.IsControl(c) && c is not '\n' and not '\r' and not '\t');
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _all.Dispose();
        _afterHeader?.Dispose();
    }
}
