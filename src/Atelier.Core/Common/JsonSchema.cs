using System.Text.Json;
using System.Text.RegularExpressions;

namespace Atelier.Core.Common;

/// <summary>
/// A validator for the subset of JSON Schema (draft 2020-12 keywords) that Atelier's own schemas use:
/// type, properties, required, additionalProperties (bool or schema), enum, minimum, maximum, minLength,
/// maxLength, pattern, items, maxItems, uniqueItems, maxProperties. A schema using any other keyword is refused
/// when it is loaded, so a schema can never silently check less than it says.
/// </summary>
public sealed class JsonSchema
{
    private static readonly HashSet<string> Known =
    [
        "$schema", "$id", "title", "description", "default", "examples",
        "type", "properties", "required", "additionalProperties", "enum", "minimum", "maximum",
        "minLength", "maxLength", "pattern", "items", "maxItems", "uniqueItems", "maxProperties",
    ];

    private readonly JsonElement _root;

    private JsonSchema(JsonElement root) => _root = root;

    public JsonElement Document => _root;

    public static JsonSchema Load(string json)
    {
        var root = JsonDocument.Parse(json).RootElement.Clone();
        CheckKeywords(root, "#");
        return new JsonSchema(root);
    }

    /// <summary>Every violation, each as "path: problem"; empty when the instance is valid.</summary>
    public IReadOnlyList<string> Validate(JsonElement instance)
    {
        var errors = new List<string>();
        Check(_root, instance, "$", errors);
        return errors;
    }

    private static void CheckKeywords(JsonElement schema, string at)
    {
        if (schema.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            return;
        }

        foreach (var p in schema.EnumerateObject())
        {
            if (!Known.Contains(p.Name))
            {
                throw new InvalidOperationException($"Schema keyword '{p.Name}' at {at} is not supported.");
            }
        }

        if (schema.TryGetProperty("properties", out var props))
        {
            foreach (var p in props.EnumerateObject())
            {
                CheckKeywords(p.Value, $"{at}/properties/{p.Name}");
            }
        }

        if (schema.TryGetProperty("items", out var items))
        {
            CheckKeywords(items, $"{at}/items");
        }

        if (schema.TryGetProperty("additionalProperties", out var extra) && extra.ValueKind == JsonValueKind.Object)
        {
            CheckKeywords(extra, $"{at}/additionalProperties");
        }
    }

    private static void Check(JsonElement schema, JsonElement value, string path, List<string> errors)
    {
        if (schema.ValueKind == JsonValueKind.False)
        {
            errors.Add($"{path}: is not allowed");
            return;
        }

        if (schema.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        if (schema.TryGetProperty("type", out var type) && !TypeMatches(type.GetString()!, value))
        {
            errors.Add($"{path}: must be of type {type.GetString()}");
            return;
        }

        if (schema.TryGetProperty("enum", out var allowed) && !allowed.EnumerateArray().Any(a => JsonElement.DeepEquals(a, value)))
        {
            errors.Add($"{path}: must be one of {allowed.GetRawText()}");
        }

        switch (value.ValueKind)
        {
            case JsonValueKind.Number:
                var n = value.GetDouble();
                if (schema.TryGetProperty("minimum", out var min) && n < min.GetDouble())
                {
                    errors.Add($"{path}: must be at least {min.GetRawText()}");
                }

                if (schema.TryGetProperty("maximum", out var max) && n > max.GetDouble())
                {
                    errors.Add($"{path}: must be at most {max.GetRawText()}");
                }

                break;
            case JsonValueKind.String:
                var s = value.GetString()!;
                if (schema.TryGetProperty("minLength", out var minLen) && s.Length < minLen.GetInt32())
                {
                    errors.Add($"{path}: must be at least {minLen.GetInt32()} characters");
                }

                if (schema.TryGetProperty("maxLength", out var maxLen) && s.Length > maxLen.GetInt32())
                {
                    errors.Add($"{path}: must be at most {maxLen.GetInt32()} characters");
                }

                if (schema.TryGetProperty("pattern", out var pattern)
                    && !Regex.IsMatch(s, pattern.GetString()!, RegexOptions.None, TimeSpan.FromMilliseconds(100)))
                {
                    errors.Add($"{path}: must match {pattern.GetString()}");
                }

                break;
            case JsonValueKind.Array:
                var count = value.GetArrayLength();
                if (schema.TryGetProperty("maxItems", out var maxItems) && count > maxItems.GetInt32())
                {
                    errors.Add($"{path}: must have at most {maxItems.GetInt32()} items");
                }

                if (schema.TryGetProperty("uniqueItems", out var unique) && unique.GetBoolean())
                {
                    var seen = new List<JsonElement>();
                    foreach (var item in value.EnumerateArray())
                    {
                        if (seen.Any(s2 => JsonElement.DeepEquals(s2, item)))
                        {
                            errors.Add($"{path}: items must be unique");
                            break;
                        }

                        seen.Add(item);
                    }
                }

                if (schema.TryGetProperty("items", out var itemSchema))
                {
                    var i = 0;
                    foreach (var item in value.EnumerateArray())
                    {
                        Check(itemSchema, item, $"{path}[{i++}]", errors);
                    }
                }

                break;
            case JsonValueKind.Object:
                CheckObject(schema, value, path, errors);
                break;
        }
    }

    private static void CheckObject(JsonElement schema, JsonElement value, string path, List<string> errors)
    {
        if (schema.TryGetProperty("required", out var required))
        {
            foreach (var name in required.EnumerateArray())
            {
                if (!value.TryGetProperty(name.GetString()!, out _))
                {
                    errors.Add($"{path}.{name.GetString()}: is required");
                }
            }
        }

        if (schema.TryGetProperty("maxProperties", out var maxProps) && value.EnumerateObject().Count() > maxProps.GetInt32())
        {
            errors.Add($"{path}: must have at most {maxProps.GetInt32()} properties");
        }

        schema.TryGetProperty("properties", out var props);
        var hasExtra = schema.TryGetProperty("additionalProperties", out var extra);
        foreach (var p in value.EnumerateObject())
        {
            if (props.ValueKind == JsonValueKind.Object && props.TryGetProperty(p.Name, out var propSchema))
            {
                Check(propSchema, p.Value, $"{path}.{p.Name}", errors);
            }
            else if (hasExtra)
            {
                Check(extra, p.Value, $"{path}.{p.Name}", errors);
            }
        }
    }

    private static bool TypeMatches(string type, JsonElement v) => type switch
    {
        "object" => v.ValueKind == JsonValueKind.Object,
        "array" => v.ValueKind == JsonValueKind.Array,
        "string" => v.ValueKind == JsonValueKind.String,
        "boolean" => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => v.ValueKind == JsonValueKind.Null,
        "number" => v.ValueKind == JsonValueKind.Number,
        "integer" => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out _),
        _ => false,
    };
}
