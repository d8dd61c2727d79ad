"""Object-model helpers shared by every component: errors, resource types, schemas, selectors."""
