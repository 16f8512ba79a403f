// Indexes for Orion's MongoDB (orion_config/README.md explains each). Orion creates none itself except the
// 2dsphere index on location.coords. With -multiservice every tenant has its own database "orion-<tenant>":
// the pilots' tenants are listed here; add yours, or run this file again with mongosh after adding one.
const tenants = ["", "iren", "eon"];
for (const tenant of tenants) {
  const name = tenant ? `orion-${tenant}` : "orion";
  const orion = db.getSiblingDB(name);
  // entity look-ups (GET /v2/entities/{id}, batch updates) and listings by type within a service path
  orion.entities.createIndex({"_id.id": 1, "_id.type": 1, "_id.servicePath": 1});
  orion.entities.createIndex({"_id.servicePath": 1, "_id.type": 1});
  orion.entities.createIndex({"_id.type": 1});
  // q= / mq= filters and attrs= projections test attribute names first
  orion.entities.createIndex({"attrNames": 1});
  // default ordering of listings (orderBy creation date) and paging with offset
  orion.entities.createIndex({"creDate": 1});
  // the metering relationships the business service queries (q=refFeeder==..., q=refBuilding==...)
  orion.entities.createIndex({"attrs.refBuilding.value": 1}, {sparse: true});
  orion.entities.createIndex({"attrs.refFeeder.value": 1}, {sparse: true});
  orion.entities.createIndex({"attrs.refSubstation.value": 1}, {sparse: true});
  // geo-queries (Orion ensures this one too; created here so that the first batch does not pay for it)
  orion.entities.createIndex({"location.coords": "2dsphere"});
  // subscriptions are matched from a cache refreshed every -subCacheIval seconds
  orion.csubs.createIndex({"servicePath": 1});
  orion.csubs.createIndex({"expiration": 1});
}
