using System.Buffers.Binary;
using System.Text.Json;

namespace Atelier.Engine.Lora;

/// <summary>One tensor of a safetensors file: its element type (F32, F16, BF16), shape and byte range in the file.</summary>
public sealed record SafeTensor(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long Count => Shape.Aggregate(1L, (a, d) => checked(a * d));
}

/// <summary>
/// A safetensors file (what LoRAs are shared as): an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and data offsets (from the end of the header), then the data. Only the header is read until
/// a tensor is asked for.
/// </summary>
public sealed class SafeTensors
{
    /// <summary>The most a header may be (the format's own limit is 100 MB; LoRA headers are tens of kilobytes).</summary>
    public const int MaxHeaderBytes = 100_000_000;

    private readonly string _path;
    private readonly long _dataStart;

    private SafeTensors(string path, long dataStart, Dictionary<string, SafeTensor> tensors, Dictionary<string, string> metadata)
    {
        _path = path;
        _dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    public IReadOnlyDictionary<string, SafeTensor> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> (kohya's training settings, for a LoRA).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafeTensors Open(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[8];
        if (stream.Read(prefix) != 8)
        {
            throw new InvalidDataException($"{Path.GetFileName(path)} is not a safetensors file (shorter than its header length)");
        }

        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength is 0 or > MaxHeaderBytes || (long)headerLength > stream.Length - 8)
        {
            throw new InvalidDataException($"{Path.GetFileName(path)} is not a safetensors file (a header of {headerLength} bytes)");
        }

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataLength = stream.Length - 8 - (long)headerLength;
        var tensors = new Dictionary<string, SafeTensor>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(header);
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in entry.Value.EnumerateObject())
                    {
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    }

                    continue;
                }

                var offsets = entry.Value.GetProperty("data_offsets");
                var (begin, end) = (offsets[0].GetInt64(), offsets[1].GetInt64());
                var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                var tensor = new SafeTensor(entry.Name, entry.Value.GetProperty("dtype").GetString()!, shape, begin, end);
                if (begin < 0 || end < begin || end > dataLength || shape.Any(d => d < 0) || end - begin != tensor.Count * ElementSize(tensor.DType))
                {
                    throw new InvalidDataException($"{Path.GetFileName(path)}: tensor {entry.Name} does not fit the file");
                }

                tensors[entry.Name] = tensor;
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException or OverflowException)
        {
            throw new InvalidDataException($"{Path.GetFileName(path)} has a malformed safetensors header: {e.Message}", e);
        }

        return new SafeTensors(path, 8 + (long)headerLength, tensors, metadata);
    }

    /// <summary>A tensor's values as floats (F32, F16 or BF16 in the file).</summary>
    public float[] ReadFloats(SafeTensor tensor)
    {
        using var stream = File.OpenRead(_path);
        stream.Position = _dataStart + tensor.Begin;
        var bytes = new byte[tensor.End - tensor.Begin];
        stream.ReadExactly(bytes);
        var result = new float[tensor.Count];
        switch (tensor.DType)
        {
            case "F32":
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
                }

                break;
            case "F16":
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(i * 2));
                }

                break;
            case "BF16":
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2)) << 16);
                }

                break;
            default:
                throw new InvalidDataException($"tensor {tensor.Name} is {tensor.DType}; LoRA tensors are read as F32, F16 or BF16");
        }

        return result;
    }

    private static int ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => throw new InvalidDataException($"unknown safetensors dtype {dtype}"),
    };

    /// <summary>Writes a safetensors file of F32 tensors (how tests and tools make a LoRA).</summary>
    public static void Write(string path, IEnumerable<(string Name, long[] Shape, float[] Values)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null)
        {
            header["__metadata__"] = metadata;
        }

        var list = tensors.ToList();
        long offset = 0;
        foreach (var (name, shape, values) in list)
        {
            header[name] = new Dictionary<string, object> { ["dtype"] = "F32", ["shape"] = shape, ["data_offsets"] = new[] { offset, offset + (values.Length * 4L) } };
            offset += values.Length * 4L;
        }

        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        using var stream = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)json.Length);
        stream.Write(prefix);
        stream.Write(json);
        foreach (var (_, _, values) in list)
        {
            var bytes = new byte[values.Length * 4];
            for (var i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
            }

            stream.Write(bytes);
        }
    }
}

/// <summary>A LoRA's training metadata for listings (A1111's <c>/sdapi/v1/loras</c> shows it); empty when the file cannot be read.</summary>
public static class SafeTensorsMetadata
{
    public static IReadOnlyDictionary<string, string> TryRead(string path)
    {
        try
        {
            return SafeTensors.Open(path).Metadata;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return new Dictionary<string, string>();
        }
    }
}
