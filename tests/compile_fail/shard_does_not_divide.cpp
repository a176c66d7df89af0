// Splitting a dimension of static extent 12 over 5 tensor-parallel ranks.
// expect: [scribe] the shard count does not divide the dimension
// expect: shards_do_not_divide<heads, std::integral_constant<long int, 12>, std::integral_constant<long int, 5> >
#include <scribe/parallel/mesh.hpp>

SCRIBE_DIM(heads);

using per_rank = scribe::parallel::sharded<heads.of<12>, 5>;

int main() {
    per_rank r;
    (void)r;
}
