// A small JSON-schema validator for tool arguments, run before "try a tool" sends anything.
// Covers: type (and type arrays), required, properties, additionalProperties (false or a schema),
// enum, const, minimum/maximum, exclusiveMinimum/exclusiveMaximum (number or draft-4 boolean),
// minLength/maxLength, pattern, items (schema or tuple array), prefixItems, minItems/maxItems,
// anyOf/oneOf/allOf, local $ref ("#/$defs/...", "#/definitions/..."), boolean schemas.
// Unknown keywords are ignored. Errors are strings "<path>: <message>" with paths like $.a.b[0].

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MAX_DEPTH = 64;

function child(path, key) {
  if (typeof key === "number") return `${path}[${key}]`;
  return IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value; // string, boolean, object
}

function hasType(value, type) {
  const actual = typeOf(value);
  if (type === "number") return actual === "number" || actual === "integer";
  return actual === type;
}

/** Canonical JSON (sorted keys) for enum/const comparison. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

function resolveRef(root, ref) {
  if (typeof ref !== "string" || !ref.startsWith("#")) return undefined;
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return undefined;
  let node = root;
  for (const raw of ref.slice(2).split("/")) {
    const part = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (!node || typeof node !== "object" || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

function codePoints(text) {
  return Array.from(text).length;
}

function check(schema, value, path, root, errors, depth) {
  if (depth > MAX_DEPTH) return;
  if (schema === true || schema === undefined || schema === null) return;
  if (schema === false) {
    errors.push(`${path}: not allowed`);
    return;
  }
  if (typeof schema !== "object" || Array.isArray(schema)) return;

  if (typeof schema.$ref === "string") {
    const target = resolveRef(root, schema.$ref);
    if (target !== undefined) check(target, value, path, root, errors, depth + 1);
  }

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (types.length && !types.some((t) => hasType(value, t))) {
      errors.push(`${path}: expected ${types.join(" or ")}`);
      return;
    }
  }

  if (Array.isArray(schema.enum) && !schema.enum.some((e) => canonical(e) === canonical(value))) {
    errors.push(`${path}: expected one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  }
  if ("const" in schema && canonical(schema.const) !== canonical(value)) {
    errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  }

  if (typeof value === "number") checkNumber(schema, value, path, errors);
  if (typeof value === "string") checkString(schema, value, path, errors);
  if (Array.isArray(value)) checkArray(schema, value, path, root, errors, depth);
  if (typeOf(value) === "object") checkObject(schema, value, path, root, errors, depth);

  if (Array.isArray(schema.allOf)) {
    for (const sub of schema.allOf) check(sub, value, path, root, errors, depth + 1);
  }
  if (Array.isArray(schema.anyOf) && schema.anyOf.length) {
    const ok = schema.anyOf.some((sub) => passes(sub, value, path, root, depth));
    if (!ok) errors.push(`${path}: does not match any of the allowed schemas`);
  }
  if (Array.isArray(schema.oneOf) && schema.oneOf.length) {
    const matching = schema.oneOf.filter((sub) => passes(sub, value, path, root, depth)).length;
    if (matching === 0) errors.push(`${path}: does not match any of the allowed schemas`);
    else if (matching > 1) errors.push(`${path}: matches more than one of the allowed schemas`);
  }
}

function passes(schema, value, path, root, depth) {
  const errors = [];
  check(schema, value, path, root, errors, depth + 1);
  return errors.length === 0;
}

function checkNumber(schema, value, path, errors) {
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum } = schema;
  if (typeof minimum === "number") {
    if (exclusiveMinimum === true ? value <= minimum : value < minimum) {
      errors.push(`${path}: must be ${exclusiveMinimum === true ? ">" : ">="} ${minimum}`);
    }
  }
  if (typeof maximum === "number") {
    if (exclusiveMaximum === true ? value >= maximum : value > maximum) {
      errors.push(`${path}: must be ${exclusiveMaximum === true ? "<" : "<="} ${maximum}`);
    }
  }
  if (typeof exclusiveMinimum === "number" && value <= exclusiveMinimum) {
    errors.push(`${path}: must be > ${exclusiveMinimum}`);
  }
  if (typeof exclusiveMaximum === "number" && value >= exclusiveMaximum) {
    errors.push(`${path}: must be < ${exclusiveMaximum}`);
  }
}

function checkString(schema, value, path, errors) {
  const length = codePoints(value);
  if (typeof schema.minLength === "number" && length < schema.minLength) {
    errors.push(`${path}: must be at least ${schema.minLength} characters long`);
  }
  if (typeof schema.maxLength === "number" && length > schema.maxLength) {
    errors.push(`${path}: must be at most ${schema.maxLength} characters long`);
  }
  if (typeof schema.pattern === "string") {
    let re = null;
    try {
      re = new RegExp(schema.pattern, "u");
    } catch {
      re = null; // a pattern this browser cannot compile is ignored, like an unknown keyword
    }
    if (re && !re.test(value)) errors.push(`${path}: does not match the pattern ${schema.pattern}`);
  }
}

function checkArray(schema, value, path, root, errors, depth) {
  if (typeof schema.minItems === "number" && value.length < schema.minItems) {
    errors.push(`${path}: must have at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}`);
  }
  if (typeof schema.maxItems === "number" && value.length > schema.maxItems) {
    errors.push(`${path}: must have at most ${schema.maxItems} item${schema.maxItems === 1 ? "" : "s"}`);
  }
  const tuple = Array.isArray(schema.prefixItems) ? schema.prefixItems : Array.isArray(schema.items) ? schema.items : null;
  if (tuple) {
    const rest = Array.isArray(schema.prefixItems) ? schema.items : schema.additionalItems;
    value.forEach((item, i) => {
      const sub = i < tuple.length ? tuple[i] : rest;
      if (sub !== undefined) check(sub, item, child(path, i), root, errors, depth + 1);
    });
  } else if (schema.items !== undefined) {
    value.forEach((item, i) => check(schema.items, item, child(path, i), root, errors, depth + 1));
  }
}

function checkObject(schema, value, path, root, errors, depth) {
  const properties = schema.properties && typeof schema.properties === "object" ? schema.properties : {};
  if (Array.isArray(schema.required)) {
    for (const name of schema.required) {
      if (typeof name === "string" && !Object.prototype.hasOwnProperty.call(value, name)) {
        errors.push(`${child(path, name)}: required property missing`);
      }
    }
  }
  for (const [name, item] of Object.entries(value)) {
    if (Object.prototype.hasOwnProperty.call(properties, name)) {
      check(properties[name], item, child(path, name), root, errors, depth + 1);
    } else if (schema.additionalProperties === false) {
      errors.push(`${child(path, name)}: unexpected property`);
    } else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
      check(schema.additionalProperties, item, child(path, name), root, errors, depth + 1);
    }
  }
}

/** Validate ``value`` against ``schema``: a list of error strings, empty when valid. */
export function validate(schema, value) {
  const errors = [];
  check(schema, value, "$", schema, errors, 0);
  return errors;
}

function placeholder(schema, root, depth) {
  if (!schema || typeof schema !== "object" || depth > 8) return null;
  if (typeof schema.$ref === "string") {
    const target = resolveRef(root, schema.$ref);
    if (target !== undefined) return placeholder(target, root, depth + 1);
  }
  if ("default" in schema) return schema.default;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const branches = schema.anyOf || schema.oneOf;
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (!type && Array.isArray(branches) && branches.length) return placeholder(branches[0], root, depth + 1);
  switch (type) {
    case "string":
      return "";
    case "number":
    case "integer":
      return typeof schema.minimum === "number" ? schema.minimum : 0;
    case "boolean":
      return false;
    case "array":
      return [];
    case "object":
      return skeletonOf(schema, root, depth + 1);
    case "null":
      return null;
    default:
      return schema.properties ? skeletonOf(schema, root, depth + 1) : null;
  }
}

function skeletonOf(schema, root, depth) {
  const out = {};
  const properties = schema.properties && typeof schema.properties === "object" ? schema.properties : {};
  if (Array.isArray(schema.required)) {
    for (const name of schema.required) {
      if (typeof name === "string") out[name] = placeholder(properties[name], root, depth);
    }
  }
  return out;
}

/** An arguments object with the schema's required properties, each a placeholder of its type. */
export function skeleton(schema) {
  if (!schema || typeof schema !== "object") return {};
  return skeletonOf(schema, schema, 0);
}
