using System.Text.Json;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Images;

/// <summary>
/// AUTOMATIC1111's "SD upscale" img2img script: the init picture is upscaled by the scale factor (with an upscaler, to
/// a size rounded down to 8), cut into overlapping tiles of the request's size (A1111's <c>split_grid</c>), each tile
/// redrawn by img2img (batches of <c>batch_size</c> tiles; each batch's first seed one past the previous batch's
/// first, as A1111 counts), and the tiles laid back with their overlaps blended by linear ramps (<c>combine_grid</c>).
/// <c>n_iter</c> makes that many upscales, the k-th from seed + k. API callers send <c>script_name: "SD upscale"</c>
/// and <c>script_args: [_, overlap, upscaler (index into /sdapi/v1/upscalers, or its name), scale factor]</c>.
/// </summary>
public sealed record SdUpscaleScript(int Overlap, string Upscaler, double ScaleFactor)
{
    public const string Title = "sd upscale";
    public const int DefaultOverlap = 64;
    public const double DefaultScale = 2;

    /// <summary>The most tiles one request redraws (each is an img2img of the request's size and steps).</summary>
    public const int MaxTiles = 256;

    /// <summary>Whether <paramref name="scriptName"/> names this script (A1111 matches titles in any case).</summary>
    public static bool Names(string? scriptName) => string.Equals(scriptName?.Trim(), Title, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The script's arguments as A1111 reads them (missing ones take the defaults: overlap 64, the first upscaler,
    /// scale 2); <see cref="EngineRequestException"/> for what cannot run, with the reason.
    /// </summary>
    public static SdUpscaleScript FromArgs(JsonElement? args, IReadOnlyList<string> upscalers)
    {
        JsonElement? At(int i) => args is { ValueKind: JsonValueKind.Array } a && a.GetArrayLength() > i && a[i].ValueKind != JsonValueKind.Null ? a[i] : null;
        var overlap = At(1) is { } o
            ? o.ValueKind == JsonValueKind.Number && o.TryGetDouble(out var ov) && ov >= 0 && ov <= 1024 && ov == Math.Floor(ov) ? (int)ov
                : throw new EngineRequestException("sd upscale: the tile overlap (script_args[1]) must be a whole number from 0 to 1024")
            : DefaultOverlap;
        string upscaler;
        switch (At(2))
        {
            case null:
                upscaler = upscalers[0];
                break;
            case { ValueKind: JsonValueKind.Number } index when index.GetDouble() is var i && i == Math.Floor(i) && i >= 0 && i < upscalers.Count:
                upscaler = upscalers[(int)i];
                break;
            case { ValueKind: JsonValueKind.String } name when upscalers.FirstOrDefault(u => string.Equals(u, name.GetString(), StringComparison.OrdinalIgnoreCase)) is { } found:
                upscaler = found;
                break;
            case var other:
                throw new EngineRequestException($"sd upscale: could not find upscaler {other.Value.GetRawText()} (script_args[2]: an index into /sdapi/v1/upscalers or a name there)");
        }

        var scale = At(3) is { } s
            ? s.ValueKind == JsonValueKind.Number && s.GetDouble() is > 0 and <= 8 ? s.GetDouble()
                : throw new EngineRequestException("sd upscale: the scale factor (script_args[3]) must be more than 0 and at most 8")
            : DefaultScale;
        return new SdUpscaleScript(overlap, upscaler, scale);
    }

    /// <summary>The infotext pairs A1111's script adds.</summary>
    public IEnumerable<KeyValuePair<string, object?>> InfoParameters() =>
        [new("SD upscale overlap", Overlap), new("SD upscale upscaler", Upscaler)];

    /// <summary>One tile: where it is in the upscaled picture, and its pixels.</summary>
    public sealed record Tile(int X, int Y, byte[] Rgb);

    /// <summary>The picture cut as A1111's <c>split_grid</c> cuts it: rows of tiles, clamped to the picture's edges.</summary>
    public sealed record Grid(IReadOnlyList<IReadOnlyList<Tile>> Rows, int TileWidth, int TileHeight, int Width, int Height, int Overlap)
    {
        public int Count => Rows.Sum(r => r.Count);
    }

    /// <summary>How many tiles <see cref="Split"/> cuts along a side: ⌈(length − overlap)/(tile − overlap)⌉.</summary>
    public static int TileCount(int length, int tile, int overlap) => Math.Max(1, (int)Math.Ceiling((double)(length - overlap) / (tile - overlap)));

    /// <summary>A1111's <c>split_grid</c>: ⌈(w − overlap)/(tile − overlap)⌉ columns spread evenly, the last flush with the edge.</summary>
    public static Grid Split(byte[] rgb, int width, int height, int tileWidth, int tileHeight, int overlap)
    {
        var cols = TileCount(width, tileWidth, overlap);
        var rows = TileCount(height, tileHeight, overlap);
        var dx = cols > 1 ? (double)(width - tileWidth) / (cols - 1) : 0;
        var dy = rows > 1 ? (double)(height - tileHeight) / (rows - 1) : 0;
        var grid = new List<IReadOnlyList<Tile>>();
        for (var row = 0; row < rows; row++)
        {
            var y = (int)(row * dy);
            if (y + tileHeight >= height)
            {
                y = height - tileHeight;
            }

            var tiles = new List<Tile>();
            for (var col = 0; col < cols; col++)
            {
                var x = (int)(col * dx);
                if (x + tileWidth >= width)
                {
                    x = width - tileWidth;
                }

                tiles.Add(new Tile(x, y, Crop(rgb, width, height, x, y, tileWidth, tileHeight)));
            }

            grid.Add(tiles);
        }

        return new Grid(grid, tileWidth, tileHeight, width, height, overlap);
    }

    /// <summary>
    /// A1111's <c>combine_grid</c>: each row laid left to right, a tile's first <c>overlap</c> columns blended over the row
    /// by a ramp ⌊255·i/overlap⌋ (PIL's paste with a mask), then the rows top to bottom the same way.
    /// </summary>
    public static byte[] Combine(Grid grid)
    {
        var (w, h, o) = (grid.Width, grid.Height, grid.Overlap);
        var ramp = Enumerable.Range(0, o).Select(i => (int)(byte)(float)(i * 255f / o)).ToArray();
        var combined = new byte[w * h * 3];
        foreach (var row in grid.Rows)
        {
            var y = row[0].Y;
            var th = grid.TileHeight;
            var line = new byte[w * th * 3];
            foreach (var tile in row)
            {
                for (var ty = 0; ty < th; ty++)
                {
                    for (var tx = Math.Max(0, -tile.X); tx < grid.TileWidth && tile.X + tx < w; tx++)
                    {
                        var (src, dst) = (((ty * grid.TileWidth) + tx) * 3, ((ty * w) + tile.X + tx) * 3);
                        for (var c = 0; c < 3; c++)
                        {
                            line[dst + c] = tile.X == 0 || tx >= o ? tile.Rgb[src + c] : Blend(line[dst + c], tile.Rgb[src + c], ramp[tx]);
                        }
                    }
                }
            }

            for (var ly = Math.Max(0, -y); ly < th && y + ly < h; ly++)
            {
                for (var x = 0; x < w * 3; x++)
                {
                    var dst = ((y + ly) * w * 3) + x;
                    var value = line[(ly * w * 3) + x];
                    combined[dst] = y == 0 || ly >= o ? value : Blend(combined[dst], value, ramp[ly]);
                }
            }
        }

        return combined;
    }

    /// <summary>
    /// Runs the script on <paramref name="pipeline"/>: <paramref name="req"/>'s init picture is the whole original
    /// (not resized to the request's size), which is the tile size.
    /// </summary>
    public GenerationResult Run(DiffusionPipeline pipeline, GenerationRequest req, Action<GenerationProgress>? progress, CancellationToken ct,
        Func<bool>? skipRequested = null)
    {
        var (rgb, w, h) = req.InitImage ?? throw new EngineRequestException("sd upscale is an img2img script: it needs an init image");
        if (Overlap >= Math.Min(req.Width, req.Height))
        {
            throw new EngineRequestException($"sd upscale: the tile overlap ({Overlap}) must be less than the tile's width and height ({req.Width}×{req.Height})");
        }

        // A1111's script: with "None" the original is cut as it is; any other upscaler runs as Upscaler.upscale does, to
        // the size rounded down to 8 (a picture smaller than a tile gives tiles padded with black, as PIL's crop does).
        var (tw, th) = Upscaler == "None" ? (w, h) : ((int)(w * ScaleFactor) / 8 * 8, (int)(h * ScaleFactor) / 8 * 8);
        if (tw < 1 || th < 1 || (long)tw * th > Upscaling.MaxOutputPixels)
        {
            throw new EngineRequestException($"sd upscale: the upscaled picture ({tw}×{th}) must have between 1 and {Upscaling.MaxOutputPixels} pixels");
        }

        // The tile count is known from the sizes: checked before anything runs.
        var count = TileCount(tw, req.Width, Overlap) * TileCount(th, req.Height, Overlap);
        if (count * req.Iterations > MaxTiles)
        {
            throw new EngineRequestException($"sd upscale: {count} tiles × {req.Iterations} upscales is over {MaxTiles}; use a larger tile, less overlap or a smaller scale");
        }

        var upscaled = Upscaler == "None" ? rgb : UpscaleBy(rgb, w, h, tw, th, req.Upscalers);
        var grid = Split(upscaled, tw, th, req.Width, req.Height, Overlap);
        var tiles = grid.Rows.SelectMany(r => r).ToList();
        var batch = Math.Max(req.BatchSize, 1);
        var batches = (tiles.Count + batch - 1) / batch;
        var seed = req.Seed == -1 ? Random.Shared.NextInt64(0, uint.MaxValue) : req.Seed;
        var subseed = req.Subseed == -1 ? Random.Shared.NextInt64(0, uint.MaxValue) : req.Subseed;
        var total = req.Iterations * tiles.Count;
        var images = new List<GeneratedImage>();
        var seeds = new List<long>();
        var subseeds = new List<long>();
        string? info = null;
        string? modelHash = null, modelName = null;
        var warnings = new List<string>();
        var done = 0;
        for (var n = 0; n < req.Iterations; n++)
        {
            var batchSeed = seed + n;
            var redrawn = new List<byte[]>(tiles.Count);
            for (var b = 0; b < batches; b++)
            {
                // A batch's tiles take its seed + i (and the subseed + i), as A1111's batch does; with a variation strength
                // they all keep the batch's seed and only the subseeds count up.
                for (var i = b * batch; i < Math.Min((b + 1) * batch, tiles.Count); i++)
                {
                    ct.ThrowIfCancellationRequested();
                    var index = done;
                    var result = pipeline.Generate(req with
                    {
                        SdUpscale = null, ExtraInfo = [.. req.ExtraInfo, .. InfoParameters()], InitImage = (tiles[i].Rgb, req.Width, req.Height), BatchSize = 1, Iterations = 1,
                        Seed = req.SubseedStrength != 0 ? batchSeed : batchSeed + (i - (b * batch)), Subseed = subseed + (i - (b * batch)),
                    }, progress is null ? null : p => progress(p with { Image = index, ImageCount = total }), ct, skipRequested);
                    redrawn.Add(PngDecoder.Decode(result.Images[0].Png).Rgb);
                    info ??= result.Images[0].Infotext;
                    (modelHash, modelName) = (result.ModelHash, result.ModelName);
                    warnings.AddRange(result.Warnings.Except(warnings));
                    done++;
                }

                batchSeed++;
            }

            var k = 0;
            var placed = new Grid([.. grid.Rows.Select(r => (IReadOnlyList<Tile>)[.. r.Select(t => t with { Rgb = redrawn[k++] })])],
                grid.TileWidth, grid.TileHeight, grid.Width, grid.Height, grid.Overlap);
            var picture = Combine(placed);
            images.Add(new GeneratedImage(Png.Encode(picture, tw, th, new Dictionary<string, string> { ["parameters"] = info! }), seed + n, info!));
            seeds.Add(seed + n);
            subseeds.Add(subseed);
        }

        return new GenerationResult(images, seed, seeds, modelHash!, modelName!, subseeds) { Warnings = warnings };
    }

    /// <summary>
    /// A1111's <c>Upscaler.upscale</c>: up to three passes of the upscaler (None: none; Lanczos and Nearest: × the scale;
    /// a model: its own scale) until the picture covers the target, then Lanczos to the target exactly.
    /// </summary>
    private byte[] UpscaleBy(byte[] rgb, int w, int h, int tw, int th, IReadOnlyList<Lora.NetworkFile> models)
    {
        using var model = Upscaler is "None" or "Lanczos" or "Nearest" ? null
            : OnnxUpscaler.Open(Lora.NetworkFile.Find(models, Upscaler) ?? throw new EngineRequestException($"could not find upscaler named {Upscaler}"));
        var (picture, pw, ph) = (rgb, w, h);
        for (var i = 0; i < 3; i++)
        {
            if (pw >= tw && ph >= th && (i > 0 || ScaleFactor != 1))
            {
                break;
            }

            var (before, beforeH) = (pw, ph);
            switch (Upscaler)
            {
                case "None":
                    break;
                case "Lanczos" or "Nearest":
                    var (nw, nh) = ((int)(pw * ScaleFactor), (int)(ph * ScaleFactor));
                    picture = Upscaling.Resize(picture, pw, ph, nw, nh, Upscaler);
                    (pw, ph) = (nw, nh);
                    break;
                default:
                    try
                    {
                        (picture, pw, ph) = model!.Upscale(picture, pw, ph);
                    }
                    catch (InvalidDataException e)
                    {
                        // A model pass that would make too large a picture (A1111 would make it, then shrink it).
                        throw new EngineRequestException($"sd upscale: {Upscaler} {e.Message}");
                    }

                    break;
            }

            if ((pw, ph) == (before, beforeH))
            {
                break;
            }
        }

        return (pw, ph) == (tw, th) ? picture : Upscaling.Resize(picture, pw, ph, tw, th, "Lanczos");
    }

    private static byte[] Crop(byte[] rgb, int width, int height, int x, int y, int w, int h)
    {
        var tile = new byte[w * h * 3];
        for (var row = 0; row < h; row++)
        {
            var sy = y + row;
            if (sy < 0 || sy >= height)
            {
                continue;
            }

            for (var col = 0; col < w; col++)
            {
                var sx = x + col;
                if (sx >= 0 && sx < width)
                {
                    Array.Copy(rgb, ((sy * width) + sx) * 3, tile, ((row * w) + col) * 3, 3);
                }
            }
        }

        return tile;
    }

    /// <summary>PIL's paste through an L mask: (dst·(255 − m) + src·m)/255, rounded as its DIV255 does.</summary>
    private static byte Blend(byte dst, byte src, int mask)
    {
        var v = (dst * (255 - mask)) + (src * mask) + 128;
        return (byte)((v + (v >> 8)) >> 8);
    }
}
