#define BOOST_TEST_MODULE tocsin
#include <boost/test/unit_test.hpp>
