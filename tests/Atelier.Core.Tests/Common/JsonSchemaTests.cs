using System.Text.Json;
using Atelier.Core.Common;

namespace Atelier.Core.Tests.Common;

public class JsonSchemaTests
{
    private const string Settings = """
        {
          "type": "object",
          "required": ["name", "size"],
          "additionalProperties": false,
          "properties": {
            "name": { "type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$" },
            "size": { "type": "integer", "minimum": 1, "maximum": 10 },
            "mode": { "enum": ["fast", "slow"] },
            "tags": { "type": "array", "maxItems": 3, "uniqueItems": true, "items": { "type": "string" } },
            "extra": { "type": "object", "maxProperties": 1, "additionalProperties": { "type": "boolean" } }
          }
        }
        """;

    private static IReadOnlyList<string> Check(string instance) =>
        JsonSchema.Load(Settings).Validate(JsonDocument.Parse(instance).RootElement);

    [Fact]
    public void Validate_InstanceThatKeepsEveryRule_HasNoErrors()
    {
        Assert.Empty(Check("""{"name":"abc","size":10,"mode":"slow","tags":["a","b"],"extra":{"on":true}}"""));
    }

    [Fact]
    public void Validate_InstanceThatBreaksManyRules_ReportsEachWithItsPath()
    {
        var errors = Check("""{"name":"A","mode":"medium","tags":["a","a","b","c"],"extra":{"x":1,"y":true},"other":0}""");

        Assert.Contains("$.size: is required", errors);
        Assert.Contains("$.name: must be at least 2 characters", errors);
        Assert.Contains("$.name: must match ^[a-z]+$", errors);
        Assert.Contains(errors, e => e.StartsWith("$.mode: must be one of", StringComparison.Ordinal));
        Assert.Contains("$.tags: must have at most 3 items", errors);
        Assert.Contains("$.tags: items must be unique", errors);
        Assert.Contains("$.extra: must have at most 1 properties", errors);
        Assert.Contains("$.extra.x: must be of type boolean", errors);
        Assert.Contains("$.other: is not allowed", errors);
    }

    [Theory]
    [InlineData("""{"name":"abc","size":2.5}""", "$.size: must be of type integer")]
    [InlineData("""{"name":"abc","size":0}""", "$.size: must be at least 1")]
    [InlineData("""{"name":"abc","size":11}""", "$.size: must be at most 10")]
    [InlineData("""{"name":"abcdefghi","size":1}""", "$.name: must be at most 8 characters")]
    [InlineData("""{"name":"abc","size":1,"tags":[1]}""", "$.tags[0]: must be of type string")]
    [InlineData("""[]""", "$: must be of type object")]
    public void Validate_OneBrokenRule_IsTheOnlyError(string instance, string error)
    {
        Assert.Equal(error, Assert.Single(Check(instance)));
    }

    [Fact]
    public void Validate_UniqueItems_ComparesByValueNotByText()
    {
        var schema = JsonSchema.Load("""{"type":"array","uniqueItems":true}""");
        Assert.NotEmpty(schema.Validate(JsonDocument.Parse("""[{"a":1,"b":2},{"b":2,"a":1}]""").RootElement));
        Assert.Empty(schema.Validate(JsonDocument.Parse("""[{"a":1},{"a":2}]""").RootElement));
    }

    [Fact]
    public void Load_KeywordItDoesNotCheck_IsRefusedNamingWhere()
    {
        // A schema must never silently check less than it says: "oneOf" deep inside is refused when loaded.
        var e = Assert.Throws<InvalidOperationException>(() =>
            JsonSchema.Load("""{"type":"object","properties":{"a":{"type":"array","items":{"oneOf":[]}}}}"""));
        Assert.Contains("'oneOf' at #/properties/a/items", e.Message, StringComparison.Ordinal);
    }
}
